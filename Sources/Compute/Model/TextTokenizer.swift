/// A tokenizer that cuts calibration and evaluation windows: text to ids, plus the tokens that
/// frame each window (BERT: [CLS] … [SEP]; decoders: BOS when the model asks for it).
public protocol TextTokenizer: Sendable {
    /// Token ids of `text`, without framing tokens.
    func encode(_ text: String) -> [Int32]
    /// Tokens put before and after each window's text.
    var framing: (prefix: [Int32], suffix: [Int32]) { get }
    /// Where it was loaded from (identifies it in caches).
    var identity: String { get }
}

extension BertTokenizer: TextTokenizer {
    public var framing: (prefix: [Int32], suffix: [Int32]) { ([cls], [sep]) }
    public var identity: String { vocabFile }
}
