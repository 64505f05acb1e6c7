"""Statistics of jobs over time: counts, crash rates, durations, retries, uncategorized crashes."""
