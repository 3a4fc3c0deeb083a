DELETE FROM part.events WHERE id % 10 = 1;
INSERT INTO part.events (happened, kind, payload)
VALUES ('2025-06-01', 'click', 'drift'), ('2030-01-01', 'x', 'drift');
-- Without ONLY: the children change too.
UPDATE public.vehicles SET name = name || '!';
DELETE FROM ONLY public.cars WHERE id = 101;
INSERT INTO public.measurements VALUES ('apac', '2030-01-01 00:00+00', -1);
