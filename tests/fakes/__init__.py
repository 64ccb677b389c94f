"""Fakes every test tier may use: no AWS, no database, no sockets."""
