UPDATE app.everything SET mood = 'happy', qty = qty + 1 WHERE id < 1010;
DELETE FROM app.tickets WHERE no > 78;
INSERT INTO app.tickets (subject) VALUES ('drift');
UPDATE edge.floats SET f8 = 42 WHERE id = 1;
DELETE FROM edge.times WHERE id = 7;
UPDATE app.registry SET relation = 'edge.floats' WHERE id = 1;
