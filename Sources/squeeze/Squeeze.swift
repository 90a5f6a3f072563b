import ArgumentParser
import Foundation

struct Squeeze: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "squeeze",
        abstract: "Batch model compression: submit jobs, run workers, watch progress.",
        version: "0.1.0",
        subcommands: [
            Migrate.self, Submit.self, WorkerCommand.self, Status.self, Top.self, DashboardCommand.self, GC.self,
            Show.self, Cancel.self, Retry.self,
            Wait.self, Logs.self, Run.self, Inspect.self, Schedule.self, Generate.self, Embed.self, Logits.self,
            Sweep.self
        ]
    )
}
