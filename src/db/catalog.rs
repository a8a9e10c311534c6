//! What the live database's catalog says about the objects migrations build:
//! INVALID indexes, left by a `CREATE INDEX CONCURRENTLY` that was
//! interrupted (statement timeout, terminated backend, server crash) or
//! failed (a unique violation). PostgreSQL keeps such an index, never uses it
//! for queries, still maintains it on writes, and `IF NOT EXISTS` treats it as
//! present; `pg_dump` leaves it out.

use tokio_postgres::GenericClient;
use tokio_postgres::types::Type;

use super::DbError;
use super::split::ConcurrentIndex;

/// An index whose build did not finish (`pg_index.indisvalid` is false).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidIndex {
    pub schema: String,
    pub name: String,
    pub table: String,
}

impl InvalidIndex {
    /// `"schema"."name"`, safe to splice into SQL (a keyword is quoted too).
    pub fn qualified(&self) -> String {
        format!(
            "{}.{}",
            quote_always(&self.schema),
            quote_always(&self.name)
        )
    }
}

fn quote_always(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

impl std::fmt::Display for InvalidIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}.{} (on {})",
            quote(&self.schema),
            quote(&self.name),
            quote(&self.table)
        )
    }
}

fn quote(ident: &str) -> String {
    let plain = ident
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_lowercase() || b == b'_' || (i > 0 && b.is_ascii_digit()));
    if plain && !ident.is_empty() {
        ident.to_owned()
    } else {
        format!("\"{}\"", ident.replace('"', "\"\""))
    }
}

const SELECT: &str = "SELECT n.nspname::text, c.relname::text, t.relname::text \
     FROM pg_index i \
     JOIN pg_class c ON c.oid = i.indexrelid \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     JOIN pg_class t ON t.oid = i.indrelid \
     WHERE NOT i.indisvalid";

fn rows_to_indexes(rows: Vec<tokio_postgres::Row>) -> Vec<InvalidIndex> {
    rows.into_iter()
        .map(|r| InvalidIndex {
            schema: r.get(0),
            name: r.get(1),
            table: r.get(2),
        })
        .collect()
}

/// Every invalid index outside PostgreSQL's own schemas, by schema and name.
pub async fn invalid_indexes(c: &impl GenericClient) -> Result<Vec<InvalidIndex>, DbError> {
    let rows = c
        .query_typed(
            &format!(
                "{SELECT} AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                 AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2"
            ),
            &[],
        )
        .await
        .map_err(|e| DbError::query("looking for invalid indexes", e))?;
    Ok(rows_to_indexes(rows))
}

/// The invalid index `ix` names, if there is one: in its schema when the
/// name is qualified, else the one the session's search path finds.
pub async fn find_invalid(
    c: &impl GenericClient,
    ix: &ConcurrentIndex,
) -> Result<Option<InvalidIndex>, DbError> {
    let rows = c
        .query_typed(
            &format!(
                "{SELECT} AND c.relname = $1 \
                 AND CASE WHEN $2::text IS NULL THEN pg_table_is_visible(c.oid) ELSE n.nspname = $2 END"
            ),
            &[(&ix.name, Type::TEXT), (&ix.schema, Type::TEXT)],
        )
        .await
        .map_err(|e| DbError::query(format!("checking whether index {} is valid", ix.name), e))?;
    Ok(rows_to_indexes(rows).into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_only_when_sql_needs_it() {
        let ix = InvalidIndex {
            schema: "public".into(),
            name: "Odd \"x\"".into(),
            table: "t".into(),
        };
        assert_eq!(ix.qualified(), "\"public\".\"Odd \"\"x\"\"\"");
        assert_eq!(quote("t_n_uniq"), "t_n_uniq");
        assert_eq!(quote("1st"), "\"1st\"");
        assert_eq!(ix.to_string(), "public.\"Odd \"\"x\"\"\" (on t)");
    }
}
