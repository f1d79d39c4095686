-- Larder: the unforgeable per-request RLS context. Run as a superuser inside the healthcare
-- database. Idempotent.
--
-- The context of one request (patient names, clinician roles, hospitals) is a row in
-- larder_private.request_context, keyed by the backend pid of the query connection and
-- tagged with a random per-request nonce. The server writes it on a SEPARATE connection as
-- larder_context_writer just before the query runs and deletes it right after. The query
-- connection sets the nonce as a transaction-local setting inside the same read-only
-- transaction as the query. RLS reads the context only through the SECURITY DEFINER
-- functions in larder_ctx, which return a row only when
--   pid   = the calling backend's pid           (cannot be changed by SQL)
--   nonce = the transaction's larder.request_nonce (only meaningful for the live row)
--   now   < expires_at
-- The query role (patients) cannot read or write larder_private at all; it may only execute
-- the argument-less functions in larder_ctx. Forging a setting changes nothing: the row it
-- would have to match exists only for this backend, for this request.

CREATE SCHEMA IF NOT EXISTS larder_private AUTHORIZATION larder_owner;
ALTER SCHEMA larder_private OWNER TO larder_owner;
REVOKE ALL ON SCHEMA larder_private FROM PUBLIC;
REVOKE ALL ON SCHEMA larder_private FROM patients;
GRANT USAGE ON SCHEMA larder_private TO larder_context_writer;

CREATE UNLOGGED TABLE IF NOT EXISTS larder_private.request_context (
  pid           integer PRIMARY KEY,
  nonce         text NOT NULL CHECK (pg_catalog.length(nonce) >= 32),
  patient_names text[] NOT NULL DEFAULT '{}',
  roles         text[] NOT NULL DEFAULT '{}',
  hospitals     text[] NOT NULL DEFAULT '{}',
  expires_at    timestamptz NOT NULL
);
ALTER TABLE larder_private.request_context OWNER TO larder_owner;
REVOKE ALL ON larder_private.request_context FROM PUBLIC;
REVOKE ALL ON larder_private.request_context FROM patients;
GRANT SELECT, INSERT, UPDATE, DELETE ON larder_private.request_context TO larder_context_writer;

-- Roles that grant hospital-wide access (the clinician context). Any other role value in a
-- context grants nothing.
CREATE TABLE IF NOT EXISTS larder_private.clinical_roles (
  role text PRIMARY KEY
);
ALTER TABLE larder_private.clinical_roles OWNER TO larder_owner;
REVOKE ALL ON larder_private.clinical_roles FROM PUBLIC;
INSERT INTO larder_private.clinical_roles (role)
VALUES ('clinician'), ('doctor'), ('nurse')
ON CONFLICT (role) DO NOTHING;

CREATE SCHEMA IF NOT EXISTS larder_ctx AUTHORIZATION larder_owner;
ALTER SCHEMA larder_ctx OWNER TO larder_owner;
REVOKE ALL ON SCHEMA larder_ctx FROM PUBLIC;
GRANT USAGE ON SCHEMA larder_ctx TO patients;

-- The patient names of the current request ('{}' when there is no valid context).
-- (PL/pgSQL rather than SQL: a SECURITY DEFINER SQL function is never inlined and would
-- re-plan its body on every call; PL/pgSQL caches the plan per session.)
CREATE OR REPLACE FUNCTION larder_ctx.patient_names()
RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  names text[];
BEGIN
  SELECT c.patient_names INTO names
    FROM larder_private.request_context c
   WHERE c.pid = pg_catalog.pg_backend_pid()
     AND c.nonce = pg_catalog.current_setting('larder.request_nonce', true)
     AND c.expires_at > pg_catalog.clock_timestamp();
  RETURN COALESCE(names, '{}'::text[]);
END
$fn$;

-- The hospitals the current request may see as a clinician: its hospitals, but only when
-- one of its roles is a clinical role; '{}' otherwise.
CREATE OR REPLACE FUNCTION larder_ctx.clinician_hospitals()
RETURNS text[]
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  result text[];
BEGIN
  SELECT c.hospitals INTO result
    FROM larder_private.request_context c
   WHERE c.pid = pg_catalog.pg_backend_pid()
     AND c.nonce = pg_catalog.current_setting('larder.request_nonce', true)
     AND c.expires_at > pg_catalog.clock_timestamp()
     AND EXISTS (SELECT 1 FROM larder_private.clinical_roles r WHERE r.role = ANY (c.roles));
  RETURN COALESCE(result, '{}'::text[]);
END
$fn$;

ALTER FUNCTION larder_ctx.patient_names() OWNER TO larder_owner;
ALTER FUNCTION larder_ctx.clinician_hospitals() OWNER TO larder_owner;
REVOKE ALL ON FUNCTION larder_ctx.patient_names() FROM PUBLIC;
REVOKE ALL ON FUNCTION larder_ctx.clinician_hospitals() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION larder_ctx.patient_names() TO patients;
GRANT EXECUTE ON FUNCTION larder_ctx.clinician_hospitals() TO patients;
