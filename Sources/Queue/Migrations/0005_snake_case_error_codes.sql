-- One vocabulary for jobs.error_code: the camelCase codes written before become snake_case
-- (JobErrorCode in Sources/Queue/Jobs/JobErrorCode.swift lists them all).
UPDATE jobs SET error_code = CASE error_code
    WHEN 'notFound' THEN 'not_found'
    WHEN 'corruptHeader' THEN 'corrupt_header'
    WHEN 'corruptData' THEN 'corrupt_data'
    WHEN 'unsupportedDType' THEN 'unsupported_dtype'
    WHEN 'shapeMismatch' THEN 'shape_mismatch'
    WHEN 'invalidRecipe' THEN 'invalid_recipe'
    WHEN 'noMatchingTensors' THEN 'no_matching_tensors'
    WHEN 'pathNotAllowed' THEN 'path_not_allowed'
    WHEN 'checksumMismatch' THEN 'checksum_mismatch'
    WHEN 'internalError' THEN 'internal'
    ELSE error_code END
WHERE error_code IN ('notFound', 'corruptHeader', 'corruptData', 'unsupportedDType', 'shapeMismatch', 'invalidRecipe',
                     'noMatchingTensors', 'pathNotAllowed', 'checksumMismatch', 'internalError');
