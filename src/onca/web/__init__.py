"""The web console: server-rendered Jinja2 pages and Onca's stylesheet (no JavaScript build step)."""
