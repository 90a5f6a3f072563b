import Compute
import Testing

@Suite struct JSONParserTests {
    func parse(_ s: String) throws -> JSONValue { try JSONParser.parse(Array(s.utf8)) }

    @Test func parsesValues() throws {
        #expect(try parse(#"{"a":[1,-2.5e3,true,false,null,"x\u00e9\n"]}"#)["a"] ==
            .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null, .string("xé\n")]))
        #expect(try parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(try parse(" 18446744073709551615 ").uint64Value == UInt64.max)
    }

    @Test(arguments: [#"{"a":1,}"#, "[1 2]", #""\ud800""#, #""\udc00x""#, "01", "1.", "-", "tru", #""a\x""#, "\"\u{01}\"", "{} {}", "", "[", "{\"a\"}"])
    func rejectsInvalid(_ s: String) {
        #expect(throws: JSONParser.Failure.self) { try parse(s) }
    }

    @Test func rejectsDeepNesting() {
        #expect(throws: JSONParser.Failure.self) { try parse(String(repeating: "[", count: 40) + String(repeating: "]", count: 40)) }
        #expect((try? parse(String(repeating: "[", count: 20) + String(repeating: "]", count: 20))) != nil)
    }
}
