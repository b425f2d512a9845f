# tests/agent.mk
