-- The update fires the audit trigger: audit.log grows too.
UPDATE public.quotes SET total = total + 1 WHERE id <= 5;
DELETE FROM public.line_items WHERE quote_id = 60;
DELETE FROM public.quotes WHERE id = 59;
UPDATE sales.customers SET credit = 0 WHERE id = 3;
INSERT INTO sales.bookings VALUES (99, 1, tsrange('2030-01-01', '2030-01-02'));
SELECT lo_unlink(424202);
SELECT lo_from_bytea(525252, 'drift');
SELECT lo_put(424201, 0, 'HELLO');
REFRESH MATERIALIZED VIEW sales.totals_mv;
