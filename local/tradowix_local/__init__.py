"""The local stack: data-service emulator + our own API Gateway emulator, driven by template.yaml.

Local-only machinery; nothing here is deployed.
"""
