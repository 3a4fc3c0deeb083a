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


# --------------------------------------------------------------------------- no oscillation
FAST_TASK, SLOW_FUNCTION = 200e6, 20e6  # bytes per second of each runner on this database
FUNCTION_SECONDS, DEADLINE_MARGIN = 900, 60


def _night(runner: str, plain_gb: float) -> dict[str, Any]:
    """One backup as each runner would run it: the function stops at its deadline."""
    seconds = plain_gb * GB / (FAST_TASK if runner == CONTAINER else SLOW_FUNCTION)
    if runner == LAMBDA and seconds > FUNCTION_SECONDS - DEADLINE_MARGIN:
        return backup(0, FUNCTION_SECONDS - DEADLINE_MARGIN, status="FAILED", deadline=True)
    return backup(plain_gb, seconds, runner=runner)


def _simulate(plain_gb: float, nights: int, history: list[dict[str, Any]] | None = None
              ) -> list[str]:
    index: list[dict[str, Any]] = list(history or [])  # newest first, as the index keeps it
    chosen = []
    for _ in range(nights):
        runner = backup_runner(index, function_seconds=FUNCTION_SECONDS).runner
        chosen.append(runner)
        index = [_night(runner, plain_gb), *index][:60]
    return chosen


def test_a_fast_task_never_sends_a_database_back_to_a_function_that_hit_its_deadline() -> None:
    # 20 GB: 100 s on the task, 1000 s on the function (past its deadline)
    chosen = _simulate(20, nights=90)
    assert chosen[0] == LAMBDA  # nothing measured yet
    assert chosen[1:] == [CONTAINER] * 89


def test_a_fast_task_never_sends_a_database_back_to_a_function_too_slow_for_it() -> None:
    # 13 GB: 650 s on the function, done but over two thirds of its limit; 65 s on the task
    chosen = _simulate(13, nights=90)
    assert chosen[0] == LAMBDA
    assert chosen[1:] == [CONTAINER] * 89


def test_a_database_that_fits_the_function_stays_in_it() -> None:
    # 8 GB: 400 s on the function, under 600 s
    assert _simulate(8, nights=30) == [LAMBDA] * 30


def test_the_function_is_projected_from_its_own_runs_not_the_tasks() -> None:
    # the task's 100 s for 20 GB says nothing of the function's 20 MB/s
    history = [backup(20, 100, runner=CONTAINER), backup(10, 500)]
    choice = backup_runner(history, function_seconds=900)
    assert choice.runner == CONTAINER and choice.projected_seconds == 1000.0
    assert "20.00 GB at the function's 20.0 MB/s" in choice.reason


def test_a_deadline_keeps_the_task_until_a_function_run_succeeds() -> None:
    stopped = backup(0, 840, status="FAILED", deadline=True)
    tasks = [backup(1, 5, runner=CONTAINER) for _ in range(10)]
    choice = backup_runner([*tasks, stopped], function_seconds=900)
    assert choice.runner == CONTAINER
    assert choice.reason == ("a function run stopped at its time limit and none has "
                             "succeeded since")
    # a function run that succeeded since (a pinned one, say) ends it: measured again
    assert backup_runner([backup(1, 10), *tasks, stopped],
                         function_seconds=900).runner == LAMBDA


def test_runs_of_unknown_runner_count_only_when_the_function_has_none() -> None:
    rebuilt = {"status": "DONE", "plain_size": int(2 * GB), "seconds": 20.0}  # from manifests
    assert backup_runner([rebuilt], function_seconds=900).runner == LAMBDA
    # the function's own slow run wins over an unknown fast one
    choice = backup_runner([rebuilt, backup(2, 1000)], function_seconds=900)
    assert choice.runner == CONTAINER and "at the function's 2.0 MB/s" in choice.reason


def test_a_database_only_the_task_has_backed_up_stays_on_the_task() -> None:
    choice = backup_runner([backup(1, 5, runner=CONTAINER)], function_seconds=900)
    assert choice.runner == CONTAINER
    assert "only the task has measured backups" in choice.reason


def restored(plain_gb: float, seconds: float, runner: str) -> dict[str, Any]:
    return {**restore(plain_gb, seconds), "runner": runner}


def test_restores_project_the_function_from_its_own_restores() -> None:
    # the function restored 4 GB in 400 s (10 MB/s); the task 4 GB in 40 s
    history = [restored(4, 40, CONTAINER), restored(4, 400, LAMBDA)]
    choice = restore_runner(int(4 * GB), restores=history, default_bytes_per_second=20e6,
                            tmp_bytes=10 * GB, function_seconds=900)
    assert choice.runner == LAMBDA and "at 10.0 MB/s" in choice.reason
    choice = restore_runner(int(6.1 * GB), restores=[restored(4, 40, CONTAINER)] * 5 + history,
                            default_bytes_per_second=20e6, tmp_bytes=10 * GB,
                            function_seconds=900)
    assert choice.runner == CONTAINER and "at 10.0 MB/s" in choice.reason


def test_restore_runner_does_not_oscillate_with_a_fast_task() -> None:
    # nightly verifications of 6 GB: 700 s on the function (over 900 / 1.5), 60 s on the task
    restores: list[dict[str, Any]] = []
    chosen = []
    for _ in range(30):
        runner = restore_runner(int(6 * GB), restores=restores, default_bytes_per_second=20e6,
                                tmp_bytes=10 * GB, function_seconds=900).runner
        chosen.append(runner)
        seconds = 60 if runner == CONTAINER else 700
        restores = [restored(6, seconds, runner), *restores][:20]
    assert chosen == [LAMBDA] + [CONTAINER] * 29


def test_a_database_only_the_task_has_restored_stays_on_the_task() -> None:
    choice = restore_runner(int(0.1 * GB), restores=[restored(4, 40, CONTAINER)],
                            default_bytes_per_second=20e6, tmp_bytes=10 * GB,
                            function_seconds=900)
    assert choice.runner == CONTAINER and "only the task has measured restores" in choice.reason


def test_a_pre_restore_backup_is_projected_at_the_functions_backup_speed() -> None:
    # the target's function backups run at 50 MB/s, its task backups at 500 MB/s: 40 GB is
    # 800 s in the function, too long, though the task's pace would make it 80 s
    target = [backup(40, 80, runner=CONTAINER), backup(20, 400)]
    choice = restore_runner(int(0.1 * GB), restores=[restore(1, 10)],
                            default_bytes_per_second=20e6, tmp_bytes=10 * GB,
                            function_seconds=900, target_bytes=40 * GB, backups=target)
    assert choice.runner == CONTAINER and "40.00 GB at 50.0 MB/s" in choice.reason
    only_task = restore_runner(int(0.1 * GB), restores=[restore(1, 10)],
                               default_bytes_per_second=20e6, tmp_bytes=10 * GB,
                               function_seconds=900, target_bytes=GB,
                               backups=[backup(1, 2, runner=CONTAINER)])
    assert only_task.runner == CONTAINER and "only the task has backed up" in only_task.reason
