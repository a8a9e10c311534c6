//! A fingerprint of the schema objects in a database (or in some of its
//! schemas), read from `pg_catalog` rather than from `pg_dump` text: every
//! object is one row of kind, schema, name and a canonical definition string
//! that PostgreSQL itself renders (`format_type`, `pg_get_constraintdef`,
//! `pg_get_indexdef`, `pg_get_viewdef`, `pg_get_triggerdef`, and a sha256 of
//! `pg_get_functiondef` for routine bodies). Rows are sorted in Rust (byte
//! order, never a database collation), and the sha256 covers that sorted list.
//!
//! Left out: PostgreSQL's own schemas (`pg_*`, `information_schema`), the
//! history schema of squizzle, and objects that belong to an extension (the
//! extension itself is listed, with its version). Data is never read:
//! a sequence's options are part of its definition, its current value is not.
//!
//! The whole read is ONE unnamed statement (`query_typed`), so it is safe
//! behind a transaction pooler and costs one round trip.

use std::collections::BTreeMap;

use futures_util::TryStreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};

use super::DbError;

/// The layout of the fingerprint document; a change to what a definition
/// string holds is a new number, so old and new fingerprints are never
/// compared as if they meant the same.
pub const FINGERPRINT_VERSION: i32 = 1;

/// Which schemas a fingerprint covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every schema a user created, except squizzle's history schema.
    AllUserSchemas,
    /// Only these schemas (one tenant's schema in a shared database, say).
    Schemas(Vec<String>),
}

impl Scope {
    /// The schema names, or `None` for every user schema.
    pub fn schemas(&self) -> Option<&[String]> {
        match self {
            Scope::AllUserSchemas => None,
            Scope::Schemas(s) => Some(s),
        }
    }

    fn covers(&self, schema: &str) -> bool {
        match self {
            Scope::AllUserSchemas => true,
            Scope::Schemas(s) => s.iter().any(|x| x == schema),
        }
    }
}

/// One schema object with its canonical definition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Object {
    /// `table`, `column`, `constraint`, `index`, `view`, `materialized_view`,
    /// `sequence`, `function`, `procedure`, `aggregate`, `enum`, `domain`,
    /// `extension` or `trigger`.
    pub kind: String,
    pub schema: String,
    /// The object's name; a column, constraint or trigger is `table.name`,
    /// a routine `name(argument types)`.
    pub name: String,
    pub definition: String,
}

impl Object {
    fn key(&self) -> (&str, &str, &str) {
        (&self.kind, &self.schema, &self.name)
    }
}

/// The objects of a database, sorted, with their sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fingerprint {
    pub fingerprint_version: i32,
    /// `sha256:<hex>` over the sorted objects (see [`Fingerprint::digest_of`]).
    pub sha256: String,
    pub objects: Vec<Object>,
}

impl Fingerprint {
    /// Sorts `objects` and computes their digest.
    pub fn new(mut objects: Vec<Object>) -> Self {
        objects.sort();
        objects.dedup();
        let sha256 = Self::digest_of(&objects);
        Fingerprint {
            fingerprint_version: FINGERPRINT_VERSION,
            sha256,
            objects,
        }
    }

    /// `sha256:` and the hex digest of one line per object, in order:
    /// kind, schema, name and definition separated by tabs, each escaped
    /// so that a tab or newline inside a name cannot make two lists equal.
    pub fn digest_of(objects: &[Object]) -> String {
        let mut d = Digester::default();
        for o in objects {
            d.push(&o.kind, &o.schema, &o.name, &o.definition);
        }
        d.finish()
    }

    /// The same fingerprint narrowed to `scope` (a recorded whole-database
    /// fingerprint compared with one schema's live objects).
    pub fn narrowed(&self, scope: &Scope) -> Fingerprint {
        if *scope == Scope::AllUserSchemas {
            return self.clone();
        }
        Fingerprint::new(
            self.objects
                .iter()
                .filter(|o| scope.covers(&o.schema))
                .cloned()
                .collect(),
        )
    }
}

/// [`Fingerprint::digest_of`] one object at a time, for objects that arrive
/// already sorted and distinct (see `HistoryStore::record_fingerprint`).
#[derive(Default)]
pub struct Digester {
    h: Sha256,
    count: usize,
}

impl Digester {
    pub fn push(&mut self, kind: &str, schema: &str, name: &str, definition: &str) {
        for (i, field) in [kind, schema, name, definition].into_iter().enumerate() {
            if i > 0 {
                self.h.update(b"\t");
            }
            self.h.update(escape(field).as_bytes());
        }
        self.h.update(b"\n");
        self.count += 1;
    }

    pub fn count(&self) -> usize {
        self.count
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", hex::encode(self.h.finalize()))
    }
}

fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\\', '\t', '\n']) {
        s.replace('\\', "\\\\")
            .replace('\t', "\\t")
            .replace('\n', "\\n")
            .into()
    } else {
        s.into()
    }
}

/// An object whose definition differs between the recorded and the live
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Changed {
    pub kind: String,
    pub schema: String,
    pub name: String,
    pub recorded: String,
    pub live: String,
}

/// What changed from `recorded` to `live`, each list sorted by kind,
/// schema and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Diff {
    pub added: Vec<Object>,
    pub removed: Vec<Object>,
    pub changed: Vec<Changed>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len() + self.changed.len()
    }
}

/// Every object added, removed or changed from `recorded` to `live`.
pub fn diff(recorded: &Fingerprint, live: &Fingerprint) -> Diff {
    let before: BTreeMap<_, &Object> = recorded.objects.iter().map(|o| (o.key(), o)).collect();
    let after: BTreeMap<_, &Object> = live.objects.iter().map(|o| (o.key(), o)).collect();
    let mut d = Diff::default();
    for (k, o) in &after {
        match before.get(k) {
            None => d.added.push((*o).clone()),
            Some(b) if b.definition != o.definition => d.changed.push(Changed {
                kind: o.kind.clone(),
                schema: o.schema.clone(),
                name: o.name.clone(),
                recorded: b.definition.clone(),
                live: o.definition.clone(),
            }),
            Some(_) => {}
        }
    }
    for (k, o) in &before {
        if !after.contains_key(k) {
            d.removed.push((*o).clone());
        }
    }
    d
}

/// Namespace filter shared by every branch: not PostgreSQL's own schemas
/// (every `pg_` name is reserved to it), not the excluded ones ($1), and in
/// the scope ($2; NULL: every schema).
const NS: &str = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' \
     AND n.nspname <> ALL($1::text[]) AND ($2::text[] IS NULL OR n.nspname = ANY($2::text[]))";

/// Not a member of an extension (`pg_depend.deptype = 'e'`).
fn not_extension_member(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass \
         AND d.objid = {oid} AND d.deptype = 'e')"
    )
}

fn select() -> String {
    let rel = not_extension_member("pg_class", "c.oid");
    let pro = not_extension_member("pg_proc", "p.oid");
    let typ = not_extension_member("pg_type", "t.oid");
    format!(
        r#"
SELECT 'table', n.nspname::text, c.relname::text,
       concat_ws(' ',
         CASE c.relkind WHEN 'p' THEN 'partitioned table' WHEN 'f' THEN 'foreign table' ELSE 'table' END,
         CASE c.relpersistence WHEN 'u' THEN 'unlogged' END,
         CASE WHEN c.relkind = 'p' THEN 'partition by ' || pg_get_partkeydef(c.oid) END,
         CASE WHEN c.relispartition THEN 'partition of ' || (SELECT i.inhparent::regclass::text FROM pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) || ' ' || pg_get_expr(c.relpartbound, c.oid) END,
         CASE WHEN c.relrowsecurity THEN 'row level security' END)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'f') AND {NS} AND {rel}
UNION ALL
SELECT 'column', n.nspname::text, c.relname::text || '.' || a.attname::text,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
               THEN ' COLLATE ' || quote_ident(co.collname) ELSE '' END
       || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
       || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(ad.adbin, ad.adrelid) || ') STORED'
               WHEN ad.adbin IS NOT NULL THEN ' DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid)
               ELSE '' END
       || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY'
                             WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped AND {NS} AND {rel}
UNION ALL
SELECT 'constraint', n.nspname::text,
       coalesce(c.relname::text, t.typname::text) || '.' || con.conname::text,
       pg_get_constraintdef(con.oid)
  FROM pg_constraint con
  JOIN pg_namespace n ON n.oid = con.connamespace
  LEFT JOIN pg_class c ON c.oid = con.conrelid
  LEFT JOIN pg_type t ON t.oid = con.contypid
 WHERE {NS} AND (con.conrelid <> 0 OR con.contypid <> 0)
   AND (c.oid IS NULL OR {rel}) AND con.conparentid = 0
UNION ALL
SELECT 'index', n.nspname::text, c.relname::text,
       pg_get_indexdef(i.indexrelid)
       || CASE WHEN NOT i.indisvalid THEN ' INVALID' ELSE '' END
       || CASE WHEN NOT i.indisready THEN ' NOT READY' ELSE '' END
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {NS} AND {rel}
UNION ALL
SELECT CASE c.relkind WHEN 'm' THEN 'materialized_view' ELSE 'view' END,
       n.nspname::text, c.relname::text, pg_get_viewdef(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('v', 'm') AND {NS} AND {rel}
UNION ALL
SELECT 'sequence', n.nspname::text, c.relname::text,
       format_type(s.seqtypid, NULL) || ' start ' || s.seqstart || ' increment ' || s.seqincrement
       || ' min ' || s.seqmin || ' max ' || s.seqmax || ' cache ' || s.seqcache
       || CASE WHEN s.seqcycle THEN ' cycle' ELSE '' END
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {NS} AND {rel}
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       n.nspname::text, p.proname::text || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       CASE WHEN p.prokind IN ('f', 'p', 'w')
            THEN coalesce('returns ' || pg_get_function_result(p.oid) || ' ', '')
                 || 'body sha256:' || encode(sha256(convert_to(pg_get_functiondef(p.oid), 'UTF8')), 'hex')
            ELSE 'returns ' || pg_get_function_result(p.oid) END
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE {NS} AND {pro}
UNION ALL
SELECT 'enum', n.nspname::text, t.typname::text,
       (SELECT string_agg(quote_literal(e.enumlabel::text), ', ' ORDER BY e.enumsortorder)
          FROM pg_enum e WHERE e.enumtypid = t.oid)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype = 'e' AND {NS} AND {typ}
UNION ALL
SELECT 'domain', n.nspname::text, t.typname::text,
       format_type(t.typbasetype, t.typtypmod)
       || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
       || coalesce(' DEFAULT ' || t.typdefault, '')
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype = 'd' AND {NS} AND {typ}
UNION ALL
SELECT 'extension', n.nspname::text, x.extname::text, 'version ' || x.extversion
  FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
 WHERE {NS}
UNION ALL
SELECT 'trigger', n.nspname::text, c.relname::text || '.' || tg.tgname::text,
       pg_get_triggerdef(tg.oid)
       || CASE tg.tgenabled WHEN 'D' THEN ' DISABLED' WHEN 'R' THEN ' ENABLE REPLICA'
                            WHEN 'A' THEN ' ENABLE ALWAYS' ELSE '' END
  FROM pg_trigger tg
  JOIN pg_class c ON c.oid = tg.tgrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT tg.tgisinternal AND tg.tgparentid = 0 AND {NS} AND {rel}
"#
    )
}

/// The objects of [`select`] as [`Fingerprint::new`] keeps them: distinct,
/// a missing definition being empty. Their order is Rust's order of
/// `(kind, schema, name, definition)`, the order of their UTF-8 bytes, which
/// `ORDER BY` [`BYTE_ORDER`] gives whatever the server's encoding and
/// collation (`convert_to(.., 'UTF8')` compares as bytes).
pub fn select_distinct() -> String {
    format!(
        "SELECT DISTINCT o.kind::text AS kind, o.schema::text AS schema, o.name::text AS name, \
                coalesce(o.definition::text, '') AS definition \
           FROM ({}) AS o(kind, schema, name, definition)",
        select()
    )
}

/// `ORDER BY` for [`select_distinct`]'s rows in Rust's order.
pub const BYTE_ORDER: &str = "convert_to(kind, 'UTF8'), convert_to(schema, 'UTF8'), \
                          convert_to(name, 'UTF8'), convert_to(definition, 'UTF8')";

/// Reads the fingerprint of `scope`, leaving out the schemas in `exclude`
/// (squizzle's history schema).
pub async fn capture(
    c: &impl GenericClient,
    scope: &Scope,
    exclude: &[&str],
) -> Result<Fingerprint, DbError> {
    let exclude: Vec<&str> = exclude.to_vec();
    let schemas: Option<Vec<&str>> = scope
        .schemas()
        .map(|s| s.iter().map(String::as_str).collect());
    let during = |e| DbError::query("reading the schema objects from the catalog", e);
    // Row by row: a large schema is held once, as objects, not also as rows.
    let params: [(&(dyn ToSql + Sync), Type); 2] =
        [(&exclude, Type::TEXT_ARRAY), (&schemas, Type::TEXT_ARRAY)];
    let rows = c.query_typed_raw(&select(), params).await.map_err(during)?;
    futures_util::pin_mut!(rows);
    let mut objects = Vec::new();
    while let Some(r) = rows.try_next().await.map_err(during)? {
        objects.push(Object {
            kind: r.try_get(0).map_err(during)?,
            schema: r.try_get(1).map_err(during)?,
            name: r.try_get(2).map_err(during)?,
            definition: r
                .try_get::<_, Option<String>>(3)
                .map_err(during)?
                .unwrap_or_default(),
        });
    }
    Ok(Fingerprint::new(objects))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(kind: &str, schema: &str, name: &str, def: &str) -> Object {
        Object {
            kind: kind.into(),
            schema: schema.into(),
            name: name.into(),
            definition: def.into(),
        }
    }

    #[test]
    fn digest_does_not_depend_on_the_order_rows_arrive_in() {
        let a = Fingerprint::new(vec![
            o("table", "public", "b", "table"),
            o("table", "public", "a", "table"),
        ]);
        let b = Fingerprint::new(vec![
            o("table", "public", "a", "table"),
            o("table", "public", "b", "table"),
        ]);
        assert_eq!(a, b);
        assert!(a.sha256.starts_with("sha256:") && a.sha256.len() == 71);
        let c = Fingerprint::new(vec![o("table", "public", "a", "table")]);
        assert_ne!(a.sha256, c.sha256);
    }

    #[test]
    fn a_tab_in_a_name_cannot_forge_another_list() {
        let a = Fingerprint::new(vec![o("table", "public", "a\tb", "c")]);
        let b = Fingerprint::new(vec![o("table", "public", "a", "b\tc")]);
        assert_ne!(a.sha256, b.sha256);
    }

    #[test]
    fn diff_names_added_removed_and_changed_objects() {
        let before = Fingerprint::new(vec![
            o("column", "public", "t.a", "integer"),
            o(
                "index",
                "public",
                "t_a_idx",
                "CREATE INDEX t_a_idx ON public.t USING btree (a)",
            ),
            o("table", "public", "t", "table"),
        ]);
        let after = Fingerprint::new(vec![
            o("column", "public", "t.a", "bigint"),
            o("column", "public", "t.b", "text"),
            o("table", "public", "t", "table"),
        ]);
        let d = diff(&before, &after);
        assert_eq!(d.added, [o("column", "public", "t.b", "text")]);
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.removed[0].name, "t_a_idx");
        assert_eq!(d.changed.len(), 1);
        assert_eq!(
            (d.changed[0].recorded.as_str(), d.changed[0].live.as_str()),
            ("integer", "bigint")
        );
        assert_eq!(d.len(), 3);
        assert!(diff(&after, &after).is_empty());
    }

    #[test]
    fn narrowing_keeps_only_the_schemas_asked_for() {
        let f = Fingerprint::new(vec![
            o("table", "tenant_a", "t", "table"),
            o("table", "tenant_b", "t", "table"),
        ]);
        let a = f.narrowed(&Scope::Schemas(vec!["tenant_a".into()]));
        assert_eq!(a.objects.len(), 1);
        assert_eq!(a.objects[0].schema, "tenant_a");
        assert_ne!(a.sha256, f.sha256);
        assert_eq!(f.narrowed(&Scope::AllUserSchemas), f);
    }
}
