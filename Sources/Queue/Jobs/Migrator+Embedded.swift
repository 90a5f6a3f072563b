extension Migrator {
    /// Every migration, embedded in the binary by SwiftPM (`resources: [.embedInCode("Migrations")]`
    /// in Package.swift). A new file in Sources/Queue/Migrations (`migrations/`) needs its line here;
    /// MigratorTests fails while this list and the directory differ.
    static let embedded: [(name: String, sql: String)] = [
        ("0001_init.sql", PackageResources._001_init_sql),
        ("0002_rank_quality.sql", PackageResources._002_rank_quality_sql),
        ("0003_worker_alive_can_claim.sql", PackageResources._003_worker_alive_can_claim_sql),
        ("0004_attempt_blas_core.sql", PackageResources._004_attempt_blas_core_sql),
        ("0005_snake_case_error_codes.sql", PackageResources._005_snake_case_error_codes_sql),
        ("0006_decoder_quality.sql", PackageResources._006_decoder_quality_sql),
        ("0007_queue_activity.sql", PackageResources._007_queue_activity_sql),
        ("0008_roles.sql", PackageResources._008_roles_sql),
        ("0009_dashboard_views.sql", PackageResources._009_dashboard_views_sql),
        ("0010_insert_guards.sql", PackageResources._010_insert_guards_sql),
        ("0011_model_bytes.sql", PackageResources._011_model_bytes_sql),
        ("0012_job_dependencies.sql", PackageResources._012_job_dependencies_sql),
        ("0013_input_size.sql", PackageResources._013_input_size_sql)
    ].map { ($0.0, String(decoding: $0.1, as: UTF8.self)) }
}
