"""
Writes the jail's seccomp filter as a BPF program (bwrap --seccomp FD), built
by libseccomp (Debian: python3-seccomp) so the syscall numbers, architecture
checks and x32 handling come from a maintained library. Run by the runtime
at start with Debian's /usr/bin/python3: seccomp-filter.py OUTPUT.

Policy: allow by default, like LXC's default profile, and refuse what
Docker's default profile refuses to a container without CAP_SYS_ADMIN and
the other capabilities a sandbox lacks, plus io_uring (Docker >= 25).
Refused calls fail with EPERM (ENOSYS for clone3, so libc falls back to
clone, whose flags are checked here; clone3's are out of a filter's reach).
Any other architecture's entry points (i386, x32) kill the process: a filter
keyed on x86_64 numbers must not be bypassed through them. ptrace,
process_vm_*, kcmp stay allowed as in Docker on kernels >= 4.8: the pid and
user namespaces confine them to the sandbox's own processes. personality is
not filtered (Docker allows a few values only; it changes nothing but the
caller's own execution domain).
"""
import errno
import sys

import seccomp

DENY = [
    # namespaces and mounts (the jail's are made before the filter applies)
    "unshare", "setns",
    "mount", "umount", "umount2", "pivot_root",
    "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
    # kernel keyrings
    "keyctl", "add_key", "request_key",
    # large kernel attack surface
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "bpf", "perf_event_open", "userfaultfd",
    "fanotify_init", "lookup_dcookie",
    "open_by_handle_at", "name_to_handle_at",
    # the machine
    "kexec_load", "kexec_file_load", "reboot",
    "init_module", "finit_module", "delete_module", "create_module", "query_module", "get_kernel_syms",
    "swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd", "nfsservctl",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname",
    "iopl", "ioperm", "uselib", "ustat", "sysfs", "_sysctl", "vhangup",
    # NUMA policy (Docker: CAP_SYS_NICE only)
    "mbind", "set_mempolicy", "get_mempolicy", "move_pages", "migrate_pages", "set_mempolicy_home_node",
]

# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET (CLONE_NEWTIME only works with
# unshare and clone3, both refused)
CLONE_NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000]


def build(path: str) -> None:
    f = seccomp.SyscallFilter(seccomp.ALLOW)
    f.set_attr(seccomp.Attr.ACT_BADARCH, seccomp.KILL_PROCESS)
    eperm = seccomp.ERRNO(errno.EPERM)
    for name in DENY:
        f.add_rule(eperm, name)
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NS_FLAGS:
        f.add_rule(eperm, "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    with open(path, "wb") as out:
        f.export_bpf(out)


if __name__ == "__main__":
    build(sys.argv[1])
