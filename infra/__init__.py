"""The Pulumi program of aurora-restore: one stack per environment (`pulumi up -s dev`)."""
