import Compute
import Testing

@Suite struct SHA256Tests {
    func hex(_ bytes: [UInt8], split: Int? = nil) -> String {
        var h = SHA256()
        if let s = split {
            h.update(Array(bytes[..<s]))
            h.update(Array(bytes[s...]))
        } else {
            h.update(bytes)
        }
        return h.finalizeHex()
    }

    @Test func knownVectors() {
        #expect(hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(hex(long) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        for s in [1, 13, 55, 56, 63, 64, 65, long.count - 1] { #expect(hex(long + long, split: s) == hex(long + long)) }
        #expect(
            hex([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func aCopyHashesOnIndependently() {
        var first = SHA256()
        first.update(Array("ab".utf8))
        var second = first
        second.update(Array("c".utf8))
        #expect(second.finalizeHex() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(first.finalizeHex() == hex(Array("ab".utf8)))
        first.update(Array("c".utf8))
        #expect(first.finalizeHex() == second.finalizeHex())
    }
}
