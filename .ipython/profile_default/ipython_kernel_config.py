# Kernel settings for notebooks run by papermill, nbval and `make lab` (IPYTHONDIR=.ipython):
# keep TensorFlow's C-level log lines out of notebook outputs, so stored outputs compare
# equal under nbval (see the README, "Repeatable numbers").
c = get_config()  # noqa: F821
c.IPKernelApp.capture_fd_output = False
