"""Search: text signals, the loaded index, persona scores, the fitted routing model and the
retrieval pipeline (persona, notes or none). Imports only `assistant.core`."""
