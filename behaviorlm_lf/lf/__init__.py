"""The bridge to LlamaFactory: running its CLI as a child process (with speed hooks), its dataset registry and its chat templates."""
