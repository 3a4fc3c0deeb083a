-- Settings that change how values print, at the database and at the role level. They take
-- effect for new sessions: every connection Backstop (or pg_dump) makes to this database.
-- psql variables: db names this database.

ALTER DATABASE :"db" SET DateStyle = 'SQL, DMY';
ALTER DATABASE :"db" SET IntervalStyle = 'sql_standard';
ALTER DATABASE :"db" SET TimeZone = 'Pacific/Chatham';
ALTER DATABASE :"db" SET extra_float_digits = -3;
ALTER DATABASE :"db" SET bytea_output = 'escape';
ALTER DATABASE :"db" SET search_path = edge, extensions, public;
-- The role that connects, in this database only: a role-level setting wins over the
-- database's.
ALTER ROLE CURRENT_USER IN DATABASE :"db" SET TimeZone = 'Asia/Kathmandu';
ALTER ROLE CURRENT_USER IN DATABASE :"db" SET DateStyle = 'German, DMY';
