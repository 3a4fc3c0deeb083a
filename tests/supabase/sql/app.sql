-- QuotePro as a Supabase project builds it on top of the sample tables, run by `postgres`:
-- profiles tied to auth.users, row-level security through auth.uid(), storage policies, a
-- sign-up trigger on auth.users, a Database Webhook and a table in the Realtime publication.
-- Grants to anon, authenticated and service_role come from the default privileges.

CREATE TABLE public.profiles (
  id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
  company_id bigint REFERENCES public.companies (id),
  full_name text,
  role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'member')),
  created_at timestamptz NOT NULL DEFAULT now());
ALTER TABLE public.quotes ADD COLUMN created_by uuid REFERENCES auth.users (id) ON DELETE SET NULL;
CREATE INDEX quotes_created_by ON public.quotes (created_by);

-- Every sign-up gets a profile: the trigger fires on GoTrue's insert into auth.users.
CREATE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  INSERT INTO public.profiles (id, full_name, created_at)
  VALUES (NEW.id, NEW.raw_user_meta_data ->> 'full_name', NEW.created_at);
  RETURN NEW;
END $$;
CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

CREATE FUNCTION public.my_company_id() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
AS $$ SELECT company_id FROM public.profiles WHERE id = (SELECT auth.uid()) $$;

ALTER TABLE public.companies ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.quotes ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.line_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.pricing_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.document_embeddings ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.profiles ENABLE ROW LEVEL SECURITY;

CREATE POLICY "members read their company" ON public.companies
  FOR SELECT TO authenticated USING (id = public.my_company_id());
CREATE POLICY "members read their company's quotes" ON public.quotes
  FOR SELECT TO authenticated USING (company_id = public.my_company_id());
CREATE POLICY "members write quotes as themselves" ON public.quotes
  FOR INSERT TO authenticated
  WITH CHECK (company_id = public.my_company_id() AND created_by = (SELECT auth.uid()));
CREATE POLICY "authors edit their quotes" ON public.quotes
  FOR UPDATE TO authenticated
  USING (created_by = (SELECT auth.uid())) WITH CHECK (created_by = (SELECT auth.uid()));
CREATE POLICY "line items follow their quote" ON public.line_items
  FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM public.quotes q WHERE q.id = quote_id));
CREATE POLICY "anyone reads the price list" ON public.pricing_items
  FOR SELECT TO anon, authenticated USING (true);
CREATE POLICY "embeddings follow their quote" ON public.document_embeddings
  FOR SELECT TO authenticated USING (quote_id IN (SELECT id FROM public.quotes));
CREATE POLICY "users read their profile" ON public.profiles
  FOR SELECT TO authenticated USING (id = (SELECT auth.uid()));
CREATE POLICY "users edit their profile" ON public.profiles
  FOR UPDATE TO authenticated USING (id = (SELECT auth.uid()));
REVOKE ALL ON public.profiles FROM anon;

-- Quote PDFs: one folder per company in a private bucket.
CREATE POLICY "members read their company's PDFs" ON storage.objects
  FOR SELECT TO authenticated
  USING (bucket_id = 'quote-pdfs'
         AND (storage.foldername(name))[1] = 'company-' || public.my_company_id());
CREATE POLICY "authors upload PDFs" ON storage.objects
  FOR INSERT TO authenticated
  WITH CHECK (bucket_id = 'quote-pdfs' AND owner = (SELECT auth.uid()));

-- A Database Webhook, as the dashboard writes one, and Realtime on quotes.
CREATE TRIGGER quote_accepted_webhook AFTER UPDATE ON public.quotes
  FOR EACH ROW WHEN (NEW.status = 'accepted' AND OLD.status IS DISTINCT FROM 'accepted')
  EXECUTE FUNCTION supabase_functions.http_request(
    'https://hooks.example.invalid/quote-accepted', 'POST',
    '{"Content-Type":"application/json"}', '{}', '5000');
ALTER PUBLICATION supabase_realtime ADD TABLE public.quotes;
