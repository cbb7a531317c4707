"""Detection-as-code: the panther-analysis content format, its runtime, runner and test harness."""
