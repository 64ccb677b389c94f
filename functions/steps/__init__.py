"""The logic of each step, called by functions.runner. Database steps live apart so others never import psycopg2."""
