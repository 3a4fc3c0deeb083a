DELETE FROM public.payment WHERE payment_id % 17 = 0;
-- Fires the full-text and last_update triggers.
UPDATE public.film SET title = title || ' II' WHERE film_id <= 10;
DELETE FROM public.film_actor WHERE actor_id = 5;
INSERT INTO public.actor (first_name, last_name) VALUES ('DRIFT', 'ACTOR');
UPDATE public.customer SET active = 0 WHERE customer_id = 7;
REFRESH MATERIALIZED VIEW public.rental_by_category;
