"""The SQL store, one module per aggregate; `adapters.sql.store.SqlStore` composes them."""
