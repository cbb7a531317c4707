"""Users, roles and access control, email, error reporting and Onca's own audit log."""
