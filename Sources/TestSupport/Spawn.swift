import Foundation

/// posix_spawn for test processes. Foundation's Process on Linux finds the descriptors to close by
/// copying 256 bytes of every /proc/self/fd entry's name, reading past the end of short entries;
/// with ~1,400 descriptors open the last entry sits at the end of its buffer and the copy faults
/// (swift-corelibs-foundation #5472; it crashed the CI suite). Here the child closes every
/// descriptor from 3 up with glibc's closefrom action, starts with default signal handling and an
/// empty signal mask, and has stdin on /dev/null and stdout/stderr in the given files.
enum Spawn {
    struct Failure: Error, CustomStringConvertible {
        let executable: String
        let code: Int32
        var description: String { "cannot start \(executable): \(String(cString: strerror(code)))" }
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// glibc 2.34+; the Glibc module does not import it, so it is looked up once.
    private static let closeFrom: CloseFrom? = dlsym(
        UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np"
    )
    .map { unsafeBitCast($0, to: CloseFrom.self) }

    static func launch(
        _ executable: String, _ args: [String], environment: [String: String], stdout: String, stderr: String
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let mode = mode_t(0o644), outFlags = O_WRONLY | O_CREAT | O_TRUNC
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, outFlags, mode)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, outFlags, mode)
        guard let closeFrom else { throw Failure(executable: executable, code: ENOSYS) }
        _ = closeFrom(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + args).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard code == 0 else { throw Failure(executable: executable, code: code) }
        return pid
    }
}
