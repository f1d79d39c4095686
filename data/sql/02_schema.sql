-- Larder: the healthcare schema, run as a superuser inside the healthcare database. Idempotent.

-- Nobody but the roles we name may connect or create temporary objects in this database.
DO $db$
BEGIN
  EXECUTE pg_catalog.format('REVOKE ALL ON DATABASE %I FROM PUBLIC', pg_catalog.current_database());
  EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO patients, larder_context_writer',
                            pg_catalog.current_database());
  EXECUTE pg_catalog.format('REVOKE TEMPORARY, CREATE ON DATABASE %I FROM patients, larder_context_writer',
                            pg_catalog.current_database());
END
$db$;

-- Schema public: usable, never writable, by anyone but its owner.
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO patients;
REVOKE CREATE ON SCHEMA public FROM patients, larder_context_writer;

CREATE TABLE IF NOT EXISTS public.health_records (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  "Patient Name"       text NOT NULL,
  "Age"                integer NOT NULL CHECK ("Age" BETWEEN 0 AND 130),
  "Gender"             text NOT NULL,
  "Blood Type"         text NOT NULL,
  "Medical Condition"  text NOT NULL,
  "Date of Admission"  date NOT NULL,
  "Doctor"             text NOT NULL,
  "Hospital"           text NOT NULL,
  "Insurance Provider" text NOT NULL,
  "Billing Amount"     numeric(12, 2) NOT NULL,
  "Room Number"        integer NOT NULL,
  "Admission Type"     text NOT NULL,
  "Discharge Date"     date NOT NULL,
  "Medication"         text NOT NULL,
  "Test Results"       text NOT NULL,
  CONSTRAINT health_records_discharge_after_admission CHECK ("Discharge Date" >= "Date of Admission")
);
ALTER TABLE public.health_records OWNER TO larder_owner;
COMMENT ON TABLE public.health_records IS
  'One row per hospital admission (synthetic). Row-level security: a patient sees their own admissions, a clinician those of their hospital.';

-- The RLS predicates are equality on these columns: they must be index lookups.
CREATE INDEX IF NOT EXISTS health_records_patient_name_idx ON public.health_records ("Patient Name");
CREATE INDEX IF NOT EXISTS health_records_hospital_idx ON public.health_records ("Hospital");
-- No planner statistics for patient names: pg_stats would otherwise list the most common
-- names to anyone with SELECT on the table, whatever RLS says (pg_stats is also revoked).
ALTER TABLE public.health_records ALTER COLUMN "Patient Name" SET STATISTICS 0;

REVOKE ALL ON public.health_records FROM PUBLIC;
REVOKE ALL ON public.health_records FROM patients, larder_context_writer;
GRANT SELECT ON public.health_records TO patients;

-- Catalog views and functions that reveal other sessions' data regardless of RLS:
-- planner statistics (most common values, histograms) and other backends' query texts.
REVOKE SELECT ON pg_catalog.pg_stats, pg_catalog.pg_stats_ext, pg_catalog.pg_stats_ext_exprs FROM PUBLIC;
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;
