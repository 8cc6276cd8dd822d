"""Chat history: sessions, messages, favourites and own personas in SQL, their import and
export, and the Alembic migrations of the schema. Imports only `assistant.core`."""
