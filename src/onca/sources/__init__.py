"""Log sources as configured in the metadata database, and their health as the lake shows it."""
