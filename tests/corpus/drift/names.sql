UPDATE public.quotes SET title = title || ' (edited)' WHERE id <= 3;
DELETE FROM other.quotes WHERE id > 40;
INSERT INTO public."a,b" VALUES (100, 'new');
UPDATE other."we.ird" SET v = 'changed' WHERE id = 1;
DELETE FROM public."other.quotes" WHERE id = 11;
INSERT INTO "Odd Schema"."Mixed Case Table" ("Col.1") VALUES ('drift');
