"""Log processing: schemas, parsers, classification and normalisation into typed rows with p_ fields."""
