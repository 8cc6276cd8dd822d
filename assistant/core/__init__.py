"""The bottom layer: settings, the records (passages, personas, sections), text helpers, the
embedding models and the vector store. Imports nothing else of the project."""
