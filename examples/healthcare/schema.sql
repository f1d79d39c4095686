-- The healthcare example's schema: one table of synthetic hospital admissions. Run by
-- `larder db setup` as the database owner before `larder policy apply` (which adds the
-- grants, the row-level security and the context machinery from policy.toml). Idempotent.
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
COMMENT ON TABLE public.health_records IS
  'One row per hospital admission (synthetic). Row-level security: a patient sees their own admissions, a clinician those of their hospital.';

-- The RLS predicates are equality on these columns: they must be index lookups.
CREATE INDEX IF NOT EXISTS health_records_patient_name_idx ON public.health_records ("Patient Name");
CREATE INDEX IF NOT EXISTS health_records_hospital_idx ON public.health_records ("Hospital");
-- No planner statistics for patient names: pg_stats would otherwise list the most common
-- names to anyone with SELECT on the table, whatever RLS says (apply also revokes pg_stats when it runs as a superuser).
ALTER TABLE public.health_records ALTER COLUMN "Patient Name" SET STATISTICS 0;

