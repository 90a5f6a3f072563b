import Foundation

/// Which defaults a recipe's omitted options take. Version 2 made the best measured settings the
/// defaults (GPTQ with act order and the MSE observer, 40 distill iterations); version 1 is what
/// every job stored before that means. Canonical JSON writes every option and `"version": 2`, so
/// a stored job keeps its meaning whatever the defaults become; stored JSON without a version is
/// read as version 1.
public enum RecipeVersion {
    /// The version of recipes written by users today.
    public static let current = 2
    public static let all = [1, 2]

    static let key = CodingUserInfoKey(rawValue: "squeeze.recipeVersion")!

    /// The version a decoder is reading under (set by `RecipeParser`).
    static func of(_ decoder: Decoder) -> Int { decoder.userInfo[key] as? Int ?? current }
}
