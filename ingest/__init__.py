"""Reads an outline notes tree into chunks and loads them into the vector store."""
