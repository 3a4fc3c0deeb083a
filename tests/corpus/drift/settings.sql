UPDATE edge.floats SET f8 = f8 + 1 WHERE id = 5;
DELETE FROM edge.texts WHERE id = 9;
INSERT INTO edge.numbers VALUES (9, 9.90, 9.9, 9.9);
UPDATE edge.documents SET jb = '{"drift": true}' WHERE id = 1;
