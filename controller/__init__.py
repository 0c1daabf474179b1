"""RunCommand operator: declarative AKS runCommand over ARM."""
