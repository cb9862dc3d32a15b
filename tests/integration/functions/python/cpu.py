"""Reads the CPU quota the function runs under, during init (module level) and when invoked."""


def vcpus():
    """The CFS quota of this container's cgroup, in vCPUs (None when unlimited)."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # cgroup v2
            quota, period = f.read().split()
        return None if quota == "max" else int(quota) / int(period)
    except FileNotFoundError:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:  # cgroup v1
            quota = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            period = int(f.read())
        return None if quota < 0 else quota / period


AT_INIT = vcpus()


def handler(event, context):
    return {"init": AT_INIT, "invoke": vcpus()}
