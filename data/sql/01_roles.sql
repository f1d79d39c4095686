-- Larder: cluster-wide roles (run as a superuser, in any database). Idempotent.
--
--   larder_owner           NOLOGIN. Owns every table, schema and function below. Because
--                          row-level security is FORCEd, even the owner is filtered.
--   patients               LOGIN. The role every LLM-written query runs as. No superuser,
--                          no BYPASSRLS, no CREATEDB/CREATEROLE, member of no role, SELECT
--                          on the exposed tables only, default read-only transactions.
--   larder_context_writer  LOGIN. Used only by the server process, on a separate connection,
--                          to write the per-request RLS context row. Cannot read any data.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'larder_owner') THEN
    CREATE ROLE larder_owner NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'patients') THEN
    CREATE ROLE patients LOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'larder_context_writer') THEN
    CREATE ROLE larder_context_writer LOGIN;
  END IF;
END
$roles$;

ALTER ROLE larder_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
ALTER ROLE patients LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
  CONNECTION LIMIT 200;
ALTER ROLE larder_context_writer LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS
  CONNECTION LIMIT 200;

-- Session defaults for the query role: read-only transactions, a fixed search_path and a
-- statement timeout backstop (the server's watchdog cancels much earlier).
ALTER ROLE patients SET default_transaction_read_only = on;
ALTER ROLE patients SET search_path = public;
ALTER ROLE patients SET statement_timeout = '60s';
ALTER ROLE patients SET idle_in_transaction_session_timeout = '60s';
ALTER ROLE patients SET lock_timeout = '5s';

-- Nothing the query role or the context writer does reaches the server log with a value. A
-- failed query's message quotes row values ("invalid input syntax for type integer:
-- "<a row>""), and statements and their parameters carry patient names. Their sessions log
-- FATAL and PANIC only, never a statement or a parameter. These are superuser-only settings
-- (the roles cannot change them); docs/database.md says what to do on a managed server.
ALTER ROLE patients SET log_min_messages = 'fatal';
ALTER ROLE patients SET log_min_error_statement = 'panic';
ALTER ROLE patients SET log_statement = 'none';
ALTER ROLE patients SET log_min_duration_statement = -1;
ALTER ROLE patients SET log_min_duration_sample = -1;
ALTER ROLE patients SET log_parameter_max_length = 0;
ALTER ROLE patients SET log_parameter_max_length_on_error = 0;
ALTER ROLE larder_context_writer SET log_min_messages = 'fatal';
ALTER ROLE larder_context_writer SET log_min_error_statement = 'panic';
ALTER ROLE larder_context_writer SET log_statement = 'none';
ALTER ROLE larder_context_writer SET log_min_duration_statement = -1;
ALTER ROLE larder_context_writer SET log_min_duration_sample = -1;
ALTER ROLE larder_context_writer SET log_parameter_max_length = 0;
ALTER ROLE larder_context_writer SET log_parameter_max_length_on_error = 0;

-- The query and writer roles are members of no role at all (including pg_read_all_data,
-- pg_read_all_stats, pg_signal_backend, ...), and nobody is a member of them.
DO $membership$
DECLARE
  m record;
BEGIN
  FOR m IN
    SELECT g.rolname AS granted, u.rolname AS member
      FROM pg_catalog.pg_auth_members am
      JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
      JOIN pg_catalog.pg_roles u ON u.oid = am.member
     WHERE u.rolname IN ('patients', 'larder_context_writer', 'larder_owner')
        OR g.rolname IN ('patients', 'larder_context_writer')
  LOOP
    EXECUTE pg_catalog.format('REVOKE %I FROM %I CASCADE', m.granted, m.member);
  END LOOP;
END
$membership$;
