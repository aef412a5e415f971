"""register-results: Clara's `--agent A --data '["dest"]'` → one export task per destination."""
