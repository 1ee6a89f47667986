"""`happysad serve` and `predict`: a TF-Serving-compatible server (REST, gRPC, hot reload, a web page), its client and explain."""
