-- The saas example's schema: a multi-tenant invoicing application. Tenants (the SaaS's own
-- customers) have users and customers; customers receive invoices made of invoice lines, each
-- for a product of one shared catalogue. Run by `larder db setup` as the database owner before
-- `larder policy apply` (which adds the grants, the row-level security, the masking views and
-- the context machinery from policy.toml). Idempotent.
CREATE TABLE IF NOT EXISTS public.tenants (
  id         uuid PRIMARY KEY,
  name       text NOT NULL UNIQUE,
  plan       text NOT NULL,
  created_on date NOT NULL
);
COMMENT ON TABLE public.tenants IS 'The organisations using the application (synthetic); every user and customer belongs to one.';

CREATE TABLE IF NOT EXISTS public.users (
  id        uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES public.tenants (id),
  email     text NOT NULL,
  full_name text NOT NULL,
  is_admin  boolean NOT NULL
);
COMMENT ON TABLE public.users IS 'The people who sign in to the application, one tenant each (synthetic).';

CREATE TABLE IF NOT EXISTS public.customers (
  id             bigint PRIMARY KEY,
  tenant_id      uuid NOT NULL REFERENCES public.tenants (id),
  name           text NOT NULL,
  email          text NOT NULL,
  phone          text NOT NULL,
  internal_notes text NOT NULL,
  created_on     date NOT NULL
);
COMMENT ON TABLE public.customers IS 'A tenant''s customers, who receive its invoices (synthetic).';

CREATE TABLE IF NOT EXISTS public.invoices (
  id          bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES public.customers (id),
  number      text NOT NULL,
  issued_on   date NOT NULL,
  due_on      date NOT NULL,
  total       numeric(12, 2) NOT NULL,
  paid        boolean NOT NULL,
  CONSTRAINT invoices_due_after_issue CHECK (due_on >= issued_on)
);
COMMENT ON TABLE public.invoices IS 'Invoices sent to customers; total is the sum of the invoice''s lines (synthetic).';

CREATE TABLE IF NOT EXISTS public.products (
  id    integer PRIMARY KEY,
  sku   text NOT NULL UNIQUE,
  name  text NOT NULL,
  price numeric(10, 2) NOT NULL
);
COMMENT ON TABLE public.products IS 'The product catalogue, shared by every tenant.';

CREATE TABLE IF NOT EXISTS public.invoice_lines (
  id         bigint PRIMARY KEY,
  invoice_id bigint NOT NULL REFERENCES public.invoices (id),
  product_id integer NOT NULL REFERENCES public.products (id),
  quantity   integer NOT NULL CHECK (quantity > 0),
  amount     numeric(12, 2) NOT NULL
);
COMMENT ON TABLE public.invoice_lines IS 'The lines of an invoice: a product, a quantity and the amount charged (synthetic).';

-- The row-level security predicates follow these columns (tenant_id directly, or the join
-- path invoice_lines -> invoices -> customers): every one must be an index lookup.
CREATE INDEX IF NOT EXISTS users_tenant_id_idx ON public.users (tenant_id);
CREATE INDEX IF NOT EXISTS customers_tenant_id_idx ON public.customers (tenant_id);
CREATE INDEX IF NOT EXISTS invoices_customer_id_idx ON public.invoices (customer_id);
CREATE INDEX IF NOT EXISTS invoice_lines_invoice_id_idx ON public.invoice_lines (invoice_id);
CREATE INDEX IF NOT EXISTS invoice_lines_product_id_idx ON public.invoice_lines (product_id);

-- No planner statistics for masked or hidden columns: pg_stats would otherwise list their
-- most common values to anyone who can read the column, whatever the masking and RLS say
-- (apply also revokes pg_stats when it runs as a superuser).
ALTER TABLE public.customers ALTER COLUMN email SET STATISTICS 0;
ALTER TABLE public.customers ALTER COLUMN phone SET STATISTICS 0;
ALTER TABLE public.customers ALTER COLUMN internal_notes SET STATISTICS 0;
ALTER TABLE public.users ALTER COLUMN email SET STATISTICS 0;
