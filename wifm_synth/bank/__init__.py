"""Bank orchestration: fitting a library into a bank, with cache, resume and executors."""
