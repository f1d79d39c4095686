-- Larder: row-level security on every protected table. Run as a superuser inside the
-- healthcare database. Idempotent (policies are dropped and recreated in one transaction).
--
-- RLS is ENABLED and FORCED (the owner is filtered too). Only SELECT policies exist, so no
-- role subject to RLS can insert, update or delete. Both policies are permissive (OR):
-- a row is visible when its patient is in the context's patient names, or when its hospital
-- is in the context's clinician hospitals. An empty context sees zero rows.
-- The context functions are wrapped in a scalar sub-select so they run once per query
-- (an InitPlan) and the predicates become index conditions.

ALTER TABLE public.health_records ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.health_records FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS health_records_patient_self ON public.health_records;
DROP POLICY IF EXISTS health_records_clinician_hospital ON public.health_records;

CREATE POLICY health_records_patient_self ON public.health_records
  AS PERMISSIVE FOR SELECT TO patients
  USING ("Patient Name" = ANY ((SELECT larder_ctx.patient_names())::text[]));

CREATE POLICY health_records_clinician_hospital ON public.health_records
  AS PERMISSIVE FOR SELECT TO patients
  USING ("Hospital" = ANY ((SELECT larder_ctx.clinician_hospitals())::text[]));
