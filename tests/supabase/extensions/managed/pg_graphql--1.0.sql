-- Stand-in: the entry point PostgREST calls, answering that there is no GraphQL engine here.
CREATE FUNCTION graphql.resolve(query text, variables jsonb DEFAULT '{}',
                                "operationName" text DEFAULT NULL,
                                extensions jsonb DEFAULT NULL)
RETURNS jsonb LANGUAGE sql STABLE
AS $$ SELECT jsonb_build_object('errors', jsonb_build_array(
        jsonb_build_object('message', 'stand-in: no GraphQL engine'))) $$;

CREATE TABLE graphql.schema_version (version integer NOT NULL);
INSERT INTO graphql.schema_version VALUES (1);
