-- The seed's shape of the restored database (the runbook's verify_restore response): schemas public and
-- app_schema, tables users, products and orders, with a few rows.
CREATE SCHEMA IF NOT EXISTS app_schema;
CREATE TABLE IF NOT EXISTS public.users (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS public.products (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0)
);
CREATE TABLE IF NOT EXISTS app_schema.orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES public.users (id),
    product_id bigint NOT NULL REFERENCES public.products (id),
    quantity integer NOT NULL DEFAULT 1,
    ordered_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.users (email) VALUES ('ada@example.com'), ('grace@example.com') ON CONFLICT DO NOTHING;
INSERT INTO public.products (name, price_cents) VALUES ('widget', 1299), ('gadget', 4999);
INSERT INTO app_schema.orders (user_id, product_id, quantity) VALUES (1, 1, 2), (2, 2, 1);
