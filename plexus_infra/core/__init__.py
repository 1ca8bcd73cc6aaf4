"""What both tools share, and all `plexus_train` imports from `plexus_infra` besides the published contracts
(`plexus_infra.environments`, `plexus_infra.plan`):

  errors    typed failures (PlexusError and its kinds) and located Problems
  exits     exit codes, the one map from failures to exit codes, the argument parser
  console   the consoles, and how errors and problems read on stderr
  aws       boto3 clients, the one call wrapper, eventual-consistency retries, waiters, transfers
  tags      AWS tag lists as dicts
  yamldoc   safe YAML that remembers the line and column of every value
  schema    JSON Schema checks that answer in located Problems
"""
