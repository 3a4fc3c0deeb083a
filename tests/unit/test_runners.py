"""Runner choice from measured history: backups and restores, function or Fargate task."""

from __future__ import annotations

from typing import Any

from backstop.runners import CONTAINER, LAMBDA, backup_runner, restore_runner

GB = 10**9


def backup(plain_gb: float, seconds: float, *, status: str = "DONE", runner: str = LAMBDA,
           deadline: bool = False) -> dict[str, Any]:
    return {"status": status, "plain_size": int(plain_gb * GB), "seconds": seconds,
            "runner": runner, "stopped_at_deadline": deadline}


def test_a_new_database_starts_in_the_function() -> None:
    assert backup_runner([], function_seconds=900).runner == LAMBDA


def test_a_database_that_grew_past_two_thirds_of_the_function_moves_to_the_task() -> None:
    # 20 GB at 40 MB/s: 500 s, under 600 s (900 / 1.5): still the function
    fits = [backup(20, 500), backup(19, 480)]
    assert backup_runner(fits, function_seconds=900).runner == LAMBDA
    # 25 GB at the same speed: 625 s, over two thirds of 900 s: the task
    grown = [backup(25, 625), *fits]
    choice = backup_runner(grown, function_seconds=900)
    # at the slowest recent rate (19 GB in 480 s)
    assert choice.runner == CONTAINER and choice.projected_seconds == round(25 / (19 / 480), 1)
    assert "over 600 s" in choice.reason


def test_the_slowest_recent_backup_sets_the_pace() -> None:
    # the same size, one slow night (busy source): projected at the slow rate
    history = [backup(10, 200), backup(10, 700), backup(10, 210)]
    assert backup_runner(history, function_seconds=900).runner == CONTAINER


def test_a_function_run_that_hit_its_deadline_sends_the_next_one_to_the_task() -> None:
    history = [backup(0, 840, status="FAILED", deadline=True), backup(1, 30)]
    choice = backup_runner(history, function_seconds=900)
    assert choice.runner == CONTAINER and "time limit" in choice.reason


def test_configuration_pins_a_runner() -> None:
    assert backup_runner([backup(100, 5000)], function_seconds=900,
                         override=LAMBDA).runner == LAMBDA
    assert backup_runner([], function_seconds=900, override=CONTAINER).runner == CONTAINER


def restore(plain_gb: float, seconds: float, ok: bool = True) -> dict[str, Any]:
    return {"plain_size": int(plain_gb * GB), "seconds": seconds, "ok": ok}


def test_restores_use_measured_throughput_of_every_phase() -> None:
    # 4 GB restored in 400 s all phases included (10 MB/s): 6 GB needs 600 s > 900 / 1.5
    measured = [restore(4, 400)]
    assert restore_runner(int(4 * GB), restores=measured, default_bytes_per_second=100e6,
                          tmp_bytes=10 * GB, function_seconds=900).runner == LAMBDA
    choice = restore_runner(int(6.1 * GB), restores=measured, default_bytes_per_second=100e6,
                            tmp_bytes=10 * GB, function_seconds=900)
    assert choice.runner == CONTAINER
    # a failed restore's time says nothing about throughput
    assert restore_runner(int(6.1 * GB), restores=[restore(1, 10_000, ok=False)],
                          default_bytes_per_second=100e6, tmp_bytes=10 * GB,
                          function_seconds=900).runner == LAMBDA


def test_a_dump_larger_than_the_functions_disk_goes_to_the_task() -> None:
    choice = restore_runner(int(9.5 * GB), restores=[], default_bytes_per_second=1e12,
                            tmp_bytes=10 * GB, function_seconds=900)
    assert choice.runner == CONTAINER and "/tmp" in choice.reason


def test_a_large_occupied_target_sizes_the_runner_for_its_pre_restore_backup() -> None:
    # a small backup restored into a large database: the pre-restore backup of the target
    # (70 GB at the database's measured 100 MB/s = 700 s) is what does not fit
    small = int(0.1 * GB)
    alone = restore_runner(small, restores=[restore(1, 10)], default_bytes_per_second=20e6,
                           tmp_bytes=10 * GB, function_seconds=900)
    assert alone.runner == LAMBDA
    occupied = restore_runner(small, restores=[restore(1, 10)], default_bytes_per_second=20e6,
                              tmp_bytes=10 * GB, function_seconds=900,
                              target_bytes=70 * GB, backups=[backup(70, 700)])
    assert occupied.runner == CONTAINER and "pre-restore backup of 70.00 GB" in occupied.reason
