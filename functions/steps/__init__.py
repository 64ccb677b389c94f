"""The logic of each step, called by functions.engine.runner. Database steps live apart so others never import psycopg2."""
