-- Every drifted target: a table the backup does not know, and every sequence moved on.
CREATE TABLE public.zz_untouched (id integer PRIMARY KEY, v text);
INSERT INTO public.zz_untouched VALUES (1, 'only in the target'), (2, 'keep me');
SELECT count(nextval(c.oid::regclass)) FROM pg_class c WHERE c.relkind = 'S';
